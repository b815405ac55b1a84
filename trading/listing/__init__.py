"""The public tender listing: its query, page cache, search terms and cursors."""
