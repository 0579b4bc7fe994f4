from stackwatch.cli.main import main

main()
