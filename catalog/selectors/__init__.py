"""The catalog's read side: the storefront (products, prices, what may be bought), orders and
inference usage. Other apps read the catalog through these."""
