"""Unit tests of add: run by check.py against solution.py in the workspace."""
import unittest

from solution import add


class TestAdd(unittest.TestCase):
    def test_0(self):
        self.assertTrue(add(2, 3) == 5, 'add(2, 3) == 5')

    def test_1(self):
        self.assertTrue(add(-1, 1) == 0, 'add(-1, 1) == 0')

    def test_2(self):
        self.assertTrue(add(0.5, 0.25) == 0.75, 'add(0.5, 0.25) == 0.75')


if __name__ == "__main__":
    unittest.main()
