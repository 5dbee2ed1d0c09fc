"""The baseline for bench/redirect.py: a bare Flask app whose one route answers a 302.

It takes the same path as the referral redirect so both apps get identical requests.
"""

from flask import Flask, redirect

app = Flask(__name__)


@app.get("/r/<code>")
def follow(code: str):
    return redirect("https://shop.example/welcome")
