"""The catalog: projects, artifacts, versions, aliases."""
