from phase5site.cli import main

main()
