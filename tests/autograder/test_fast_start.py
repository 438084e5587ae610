"""What grading processes skip at start-up changes nothing they check (``fast_start.py``)."""
import subprocess
import sys

CODE = """
from autograder.runner.fast_start import skip_unused_imports
skip_unused_imports()
import sys, nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
nbformat.validate(nb)
nb.cells[0]["source"] = 3   # a number where the schema wants text
try:
    nbformat.validate(nb)
    print("accepted")
except nbformat.ValidationError:
    print("refused")
print(sys.modules.get("rfc3987_syntax", "absent"))
"""


def test_notebooks_are_validated_as_before_without_the_iri_grammar():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["refused", "None"]   # a bad notebook is still refused; the grammar module never loaded
