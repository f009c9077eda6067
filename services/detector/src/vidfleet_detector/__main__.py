from vidfleet_detector.fleet.cli import main

main()
