"""Unit tests of capitalize_words: run by check.py against solution.py in the workspace."""
import unittest

from solution import capitalize_words


class TestCapitalizeWords(unittest.TestCase):
    def test_0(self):
        self.assertTrue(capitalize_words('hello world') == 'Hello World', "capitalize_words('hello world') == 'Hello World'")

    def test_1(self):
        self.assertTrue(capitalize_words('a') == 'A', "capitalize_words('a') == 'A'")


if __name__ == "__main__":
    unittest.main()
