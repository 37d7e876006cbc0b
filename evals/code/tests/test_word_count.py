"""Unit tests of word_count: run by check.py against solution.py in the workspace."""
import unittest

from solution import word_count


class TestWordCount(unittest.TestCase):
    def test_0(self):
        self.assertTrue(word_count('a b  c') == 3, "word_count('a b  c') == 3")

    def test_1(self):
        self.assertTrue(word_count('') == 0, "word_count('') == 0")

    def test_2(self):
        self.assertTrue(word_count(' hello ') == 1, "word_count(' hello ') == 1")


if __name__ == "__main__":
    unittest.main()
