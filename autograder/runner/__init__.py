"""The isolated grading runner: runs a submission in a sandboxed worker and the hidden
tests in the grader's own process."""
