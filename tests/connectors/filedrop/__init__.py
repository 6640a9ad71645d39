"""Tests of the filedrop connector."""
