"""The `aigc` command line: run the platform (up, web, worker), manage keys, submit and watch jobs."""
