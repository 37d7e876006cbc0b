"""Unit tests of gcd: run by check.py against solution.py in the workspace."""
import unittest

from solution import gcd


class TestGcd(unittest.TestCase):
    def test_0(self):
        self.assertTrue(gcd(12, 18) == 6, 'gcd(12, 18) == 6')

    def test_1(self):
        self.assertTrue(gcd(7, 5) == 1, 'gcd(7, 5) == 1')

    def test_2(self):
        self.assertTrue(gcd(100, 10) == 10, 'gcd(100, 10) == 10')


if __name__ == "__main__":
    unittest.main()
