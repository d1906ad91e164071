from maxloyalty.cli import main

main()
