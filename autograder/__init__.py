"""Hidden tests and the isolated grading runner."""
