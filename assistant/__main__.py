import sys

from assistant.adapters.cli import main

sys.exit(main())
