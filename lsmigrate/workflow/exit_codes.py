"""lsmigrate's exit codes. The CLI maps each run's result to one; a refused cutover's document also records
the code its refusal calls for (`"exit"`), which is why they live below the CLI."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_TERMINATED = 143  # SIGTERM, as a shell reports a process it ended (128 + 15)
