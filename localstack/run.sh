#!/usr/bin/env bash
# Run LocalStack (S3 only) without Docker, in the foreground, on 127.0.0.1.
# Creates the versioned bucket refstore-demo, like the Docker ready hook.
# Ctrl-C stops it. Install first with localstack/install.sh.
#
#   localstack/run.sh              # port 4566
#   localstack/run.sh 4577         # another port
#   REFSTORE_LOCALSTACK_DATA=/some/dir localstack/run.sh   # keep its files there
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${REFSTORE_LOCALSTACK_VENV:-$(dirname "$here")/.venvs/localstack}"
port="${1:-4566}"
endpoint="http://127.0.0.1:$port"
bucket="${REFSTORE_DEMO_BUCKET:-refstore-demo}"

if [ ! -x "$venv/bin/python" ]; then
    echo "run.sh: LocalStack is not installed in $venv; run localstack/install.sh" >&2
    exit 1
fi

data="${REFSTORE_LOCALSTACK_DATA:-$(mktemp -d -t refstore-localstack.XXXXXX)}"
mkdir -p "$data"
log="$data/localstack.log"

SERVICES=s3 EAGER_SERVICE_LOADING=1 \
    GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" \
    FILESYSTEM_ROOT="$data" DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 LS_LOG="${LS_LOG:-warn}" \
    "$venv/bin/python" -m localstack.runtime.main >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' INT TERM EXIT

for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: LocalStack exited; its log ($log):" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    if grep -q "^Ready\." "$log" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if ! grep -q "^Ready\." "$log"; then
    echo "run.sh: LocalStack did not start within 60 s; its log: $log" >&2
    exit 1
fi

AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "$venv/bin/python" - "$endpoint" "$bucket" <<'PY'
import sys

import boto3

endpoint, bucket = sys.argv[1:3]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
PY

cat <<MSG
LocalStack (S3) is running at $endpoint  (pid $pid, files in $data)
Versioned demo bucket: s3://$bucket
Use it from refstore with:
  export AWS_ENDPOINT_URL_S3=$endpoint AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
or per bucket in \$REFSTORE_HOME/config.toml:
  [stores."s3://$bucket"]
  endpoint_url = "$endpoint"
Ctrl-C stops it.
MSG
wait "$pid"
