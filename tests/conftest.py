import sys
from pathlib import Path

# tests/oracle.py and tests/common.py are imported by name, whatever pytest's import mode
sys.path.insert(0, str(Path(__file__).parent))
