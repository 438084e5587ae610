"""nbgrader configuration: ``solutions/`` is the source, ``labs/`` the student release.

    nbgrader generate_assignment 03_transformer --force   # or: genlab labs 03_transformer

Releases are generated without a gradebook database, so nothing outside ``labs/`` is
written and the output depends only on ``solutions/``. (The grader keeps its own
gradebook; see ``autograder/runner``.)
"""
from pathlib import Path

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
c.CourseDirectory.course_id = "genlab"

# No gradebook while generating a release: deterministic, and no gradebook.db in the repo.
c.GenerateAssignment.no_database = True
c.SaveCells.enabled = False

# The solution cells' markers; nbgrader replaces what lies between them with the stub.
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
