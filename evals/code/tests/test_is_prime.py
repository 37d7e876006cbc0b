"""Unit tests of is_prime: run by check.py against solution.py in the workspace."""
import unittest

from solution import is_prime


class TestIsPrime(unittest.TestCase):
    def test_0(self):
        self.assertTrue(is_prime(2) is True, 'is_prime(2) is True')

    def test_1(self):
        self.assertTrue(is_prime(15) is False, 'is_prime(15) is False')

    def test_2(self):
        self.assertTrue(is_prime(17) is True, 'is_prime(17) is True')

    def test_3(self):
        self.assertTrue(is_prime(1) is False, 'is_prime(1) is False')


if __name__ == "__main__":
    unittest.main()
