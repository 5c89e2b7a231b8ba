#!/usr/bin/env bash
# LocalStack ready hook: a versioned bucket for refstore's demo and docs.
# Runs inside the LocalStack container, where awslocal is installed; safe to
# run again.
set -euo pipefail

bucket="${REFSTORE_DEMO_BUCKET:-refstore-demo}"

if ! awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    awslocal s3api create-bucket --bucket "$bucket" >/dev/null
fi
awslocal s3api put-bucket-versioning --bucket "$bucket" \
    --versioning-configuration Status=Enabled
echo "refstore: bucket s3://$bucket is ready (versioning enabled)"
