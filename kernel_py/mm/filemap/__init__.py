# The page cache: filemap, writeback, truncate.
