"""What each command does, apart from how it is asked for and printed: plan, copy, verify, cutover,
local-to-*, sync, doctor. Functions take a `RunOptions` and plain arguments and return the documents
the CLI prints; they never print, prompt or exit: progress displays come from `RunOptions.progress`, and a
switch asks through the `approve` it is handed, both made by the CLI.
"""
