import sys

from mmcl_helpers.cli import main

sys.exit(main())
