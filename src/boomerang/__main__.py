from boomerang.cli.app import main

main()
