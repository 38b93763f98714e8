from meshgate.cli import main

main()
