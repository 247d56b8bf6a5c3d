# Library code with no kernel state (Linux's lib/): errors, bisect, the command line, checksums.
