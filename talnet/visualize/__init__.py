"""Pictures of results: annotated video, offline HTML report, plots."""
