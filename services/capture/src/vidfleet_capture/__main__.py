"""`python -m vidfleet_capture worker ...`: the capture service's composition root."""

from vidfleet_capture.cli import main

if __name__ == "__main__":
    main()
