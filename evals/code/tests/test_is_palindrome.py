"""Unit tests of is_palindrome: run by check.py against solution.py in the workspace."""
import unittest

from solution import is_palindrome


class TestIsPalindrome(unittest.TestCase):
    def test_0(self):
        self.assertTrue(is_palindrome('Never odd or even') is True, "is_palindrome('Never odd or even') is True")

    def test_1(self):
        self.assertTrue(is_palindrome('abc') is False, "is_palindrome('abc') is False")

    def test_2(self):
        self.assertTrue(is_palindrome('') is True, "is_palindrome('') is True")


if __name__ == "__main__":
    unittest.main()
