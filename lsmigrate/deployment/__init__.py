"""Read and edit a Label Studio deployment's own configuration files (env file, docker-compose.yml, Helm
values), keeping comments, order, quoting and layout; write them with a backup, and roll back.

Edits never touch a line they do not have to: env files are edited line by line, and a line that is
written takes the one form `docker run --env-file` and docker compose read alike; YAML is edited with
ruamel.yaml in round-trip mode and the result is laid back onto the original text, so that every line
ruamel.yaml would merely have reformatted stays byte-identical.

One module per job; `kinds` is the registry of file kinds. This file imports nothing: the YAML modules (and
ruamel.yaml) load only where a YAML file is read, and no module reaches its siblings through the package.
"""
