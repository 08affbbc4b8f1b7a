"""The colorchanger-runner command line: runs one twitchio bot per configured user."""
