"""`python -m bridge ...`: the same command as `fba-bridge ...`."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="fba-bridge")
