# The console: command registry, /proc and /sys files, line parsing, REPL.
