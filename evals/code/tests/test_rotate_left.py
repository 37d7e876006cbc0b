"""Unit tests of rotate_left: run by check.py against solution.py in the workspace."""
import unittest

from solution import rotate_left


class TestRotateLeft(unittest.TestCase):
    def test_0(self):
        self.assertTrue(rotate_left([1, 2, 3, 4], 1) == [2, 3, 4, 1], 'rotate_left([1, 2, 3, 4], 1) == [2, 3, 4, 1]')

    def test_1(self):
        self.assertTrue(rotate_left([1, 2, 3], 4) == [2, 3, 1], 'rotate_left([1, 2, 3], 4) == [2, 3, 1]')

    def test_2(self):
        self.assertTrue(rotate_left([], 2) == [], 'rotate_left([], 2) == []')


if __name__ == "__main__":
    unittest.main()
