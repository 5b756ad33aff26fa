"""The management API for a team's backends and tools, authenticated by a project's secret key."""
