"""`make bench`: load the benchmark data set, serve it, and measure three queries with wrk."""
