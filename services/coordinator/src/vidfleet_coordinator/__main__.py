from vidfleet_coordinator.cli import main

main()
