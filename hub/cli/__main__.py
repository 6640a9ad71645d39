"""`python -m hub.cli`: the same as the `synchub` command."""

from hub.cli import main

main()
