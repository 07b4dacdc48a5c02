"""Command line: parse, call the workflow, print, exit code. Nothing else lives here.

app: the group with every command on it (the console script's `main`); group: the `lsmigrate` group and its
one-line usage errors; options: the shared options and what they become for the workflow; output: printing;
guard: signals and exit codes; copying, switching, syncing, preflight: the commands (plan/copy/verify,
cutover/local-to-*, sync, doctor). This file imports nothing, so no module reaches its siblings through it.
"""
