from fieldreport.cli import main

main()
