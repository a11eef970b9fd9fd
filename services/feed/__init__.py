"""feed: posts, likes, comments and reshares; a replica of who follows and who is connected;
the timelines that make the home feed."""
