"""Unit tests of count_vowels: run by check.py against solution.py in the workspace."""
import unittest

from solution import count_vowels


class TestCountVowels(unittest.TestCase):
    def test_0(self):
        self.assertTrue(count_vowels('hello') == 2, "count_vowels('hello') == 2")

    def test_1(self):
        self.assertTrue(count_vowels('AEIOU') == 5, "count_vowels('AEIOU') == 5")

    def test_2(self):
        self.assertTrue(count_vowels('xyz') == 0, "count_vowels('xyz') == 0")


if __name__ == "__main__":
    unittest.main()
