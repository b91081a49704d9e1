from advlab.cli import main

raise SystemExit(main())
