"""Unit tests of binary_to_int: run by check.py against solution.py in the workspace."""
import unittest

from solution import binary_to_int


class TestBinaryToInt(unittest.TestCase):
    def test_0(self):
        self.assertTrue(binary_to_int('101') == 5, "binary_to_int('101') == 5")

    def test_1(self):
        self.assertTrue(binary_to_int('0') == 0, "binary_to_int('0') == 0")

    def test_2(self):
        self.assertTrue(binary_to_int('11111111') == 255, "binary_to_int('11111111') == 255")


if __name__ == "__main__":
    unittest.main()
