from ksa.cli import main

raise SystemExit(main())
