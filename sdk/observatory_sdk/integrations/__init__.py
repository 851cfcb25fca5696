"""One module per client library; each is imported only when the app uses that library."""
