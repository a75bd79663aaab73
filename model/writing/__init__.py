"""Words written by the language model from facts given by code: the claim verifier (``grounding``), verified
streaming (``live``), customer-service answers (``support``), product answers (``product_text``) and
descriptions (``describe``). Every number or promise is checked before a shopper sees it.
"""
