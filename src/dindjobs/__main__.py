from dindjobs.cli import main

main()
