"""Tryton 8.2 as an ERP, over its JSON-RPC: products, stock with reservations, customers, sales, invoices,
shipments and supplier receipts (``docs/erp-connectors.md``, ``docs/tryton.md``).

- ``rpc.py``: the JSON-RPC client: Tryton's typed-value codec, ``classify_tryton`` (errors in HTTP 200 replies),
  ``TrytonRpc`` (login, context, one login again on an expired session); the dev server's session uses it too;
- ``mapping.py``: pure transforms between Tryton's rows and canonical records;
- ``session.py``: ``TrytonSession``, what the parts share: calls, keyset pages, the configuration read once;
- ``products.py``, ``stock.py``, ``parties.py`` (customers, suppliers), ``sales.py`` (shop orders in),
  ``sales_read.py`` (sales out: orders, statuses), ``receipts.py``: one part per entity;
- ``connector.py``: ``TrytonConnector``, the ``ErpConnector`` of ``connectors/erp/base.py``, composed of the parts.

How Tryton's records become canonical ones (details and the reasons in ``docs/erp-connectors.md``):

- a product template is a ``Product`` (``erp_id`` = template id); with several variants (``product.product``) its
  SKU is the template code and each variant's SKU is its own code (template code + suffix code); with one
  variant it is a basic product whose SKU is that variant's code;
- prices are Tryton's list prices (net), or with the option ``price_list`` each product's sale price under that
  price list (module ``sale_price_list``); the VAT rate comes from the customer taxes of the account category;
- stock is read at each warehouse's storage location: on hand = ``quantity``; reserved = what moves planned out
  of the storage zone (draft or assigned, i.e. confirmed sales not yet picked) will take;
- a shop order is a ``sale.sale`` with ``reference`` = the order's reference (the store's reference prefix + the
  shop order id), quoted and confirmed.
"""

from __future__ import annotations

from erpsync.connectors.erp.tryton.connector import CAPABILITIES, TrytonConnector

__all__ = ["CAPABILITIES", "TrytonConnector"]
