import sys

from tunnel_client.cli import main

sys.exit(main())
