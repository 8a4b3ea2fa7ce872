from kubestack_ai.ksa.cli import main

raise SystemExit(main())
