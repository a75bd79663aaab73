"""Shared fixtures: a small hand-written catalog and search engines over it with the hashing encoder."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from retrieval.catalog import Product, load_catalog
from retrieval.encoders import HashingEncoder

# No test loads the packaged language model by accident: a test that wants a model passes one (a
# scripted double or the tiny transformers model) explicitly.
os.environ["SHOPBOT_LLM"] = "off"

ROWS = [
    # sku, title, title_zh, description, category, brand, price, stock, color, size, material
    ("COA-1", "Women's Quilted Winter Coat, Red", "女款红色冬季棉服外套", "Warm quilted coat with a hood.", "Apparel > Coats", "Northwind", "69.99", "5", "red", "S|M|L", "polyester"),
    ("COA-2", "Men's Wool Winter Coat, Navy", "男款羊毛大衣 藏青色", "Classic wool overcoat.", "Apparel > Coats", "Harbor", "149.00", "3", "navy", "M|L|XL", "wool"),
    ("COA-3", "Kids' Puffer Winter Coat, Red", "", "Lightweight puffer coat for kids.", "Apparel > Coats", "Northwind", "39.50", "0", "red", "XS|S", "nylon"),
    ("SHO-1", "Nike Pegasus 41 Men's Running Shoe, Black", "耐克 Pegasus 41 男款跑步鞋 黑色", "Responsive foam running shoe with mesh upper.", "Shoes > Running", "Nike", "129.99", "12", "black", "40|41|42|43", "mesh"),
    ("SHO-2", "Adidas Duramo Running Shoe, Blue", "阿迪达斯 Duramo 跑步鞋 蓝色", "Everyday running shoe.", "Shoes > Running", "Adidas", "59.99", "8", "blue", "38|39|42", "mesh"),
    ("SHO-3", "Merrell Moab 3 Hiking Boot, Brown", "", "Waterproof leather hiking boot.", "Shoes > Hiking", "Merrell", "119.95", "4", "brown", "41|42|44", "leather"),
    ("PHO-1", "Xiaomi 14 Smartphone 256GB, Black", "小米 14 智能手机 256GB 黑色", "6.36-inch display, Leica camera.", "Phones > Smartphones", "Xiaomi", "699.00", "20", "black", "", ""),
    ("PHO-2", "Apple iPhone 15 128GB, Pink", "苹果 iPhone 15 手机 128GB 粉色", "A16 Bionic chip, USB-C.", "Phones > Smartphones", "Apple", "799.00", "15", "pink", "", ""),
    ("PHO-3", "Clear Silicone Case for iPhone 15", "iPhone 15 透明硅胶手机壳", "Slim shock-absorbing case.", "Phones > Cases", "Caseco", "12.99", "100", "", "", "silicone"),
    ("LAP-1", "Lenovo IdeaPad Slim 5 14\" Laptop, 16GB RAM, 512GB SSD", "联想 IdeaPad Slim 5 笔记本电脑", "Thin and light laptop.", "Laptops > Notebooks", "Lenovo", "749.00", "6", "grey", "", "aluminium"),
    ("LAP-2", "Neoprene Laptop Sleeve 14 inch, Grey", "14英寸 笔记本电脑内胆包", "Padded sleeve for 14-inch laptops.", "Computer Accessories > Bags", "Caseco", "19.99", "40", "grey", "", "neoprene"),
    ("KIT-1", "KitchenAid Artisan Stand Mixer 5 Qt, Red", "", "Tilt-head stand mixer with 10 speeds.", "Kitchen > Appliances", "KitchenAid", "429.99", "2", "red", "", "metal"),
    ("BOO-1", "The Hobbit (Paperback)", "霍比特人（平装）", "Classic fantasy novel.", "Books > Fiction", "Penguin", "9.99", "30", "", "", ""),
]
HEADER = ["sku", "title", "title_zh", "description", "category", "brand", "price", "stock", "color", "size", "material"]


def write_catalog(path: Path, rows=ROWS, header=HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def catalog_csv(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "catalog.csv")


@pytest.fixture
def products(catalog_csv: Path) -> list[Product]:
    return load_catalog(catalog_csv).products


def hashing_factory(name: str) -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def engine(products, tmp_path):
    from retrieval.indexer import build_bundle, load_engine

    root = tmp_path / "index"
    build_bundle(products, root, encoders={"en": "hashing", "multi": "hashing"}, encoder_factory=hashing_factory)
    return load_engine(root, encoders={"en": "hashing", "multi": "hashing"}, encoder_factory=hashing_factory)


@pytest.fixture(scope="session")
def demo_engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real encoders over the bundled demo catalog (titles only: the title+description view triples
    indexing time and is covered by the eval figures). Built once per test session."""
    from retrieval.indexer import build_bundle, load_engine

    root: Path = tmp_path_factory.mktemp("demo") / "index"
    build_bundle(load_catalog().products, root, body_view=False)
    return load_engine(root)


@pytest.fixture
def hashing_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment a `shopbot` command reads, set for a quick run: a data dir under ``tmp_path`` and the
    hashing encoder without the title+description view. Returns the data dir."""
    data = tmp_path / "data"
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(data))
    monkeypatch.setenv("SHOPBOT_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_MULTILINGUAL_ENCODER", "hashing")
    monkeypatch.setenv("SHOPBOT_BODY_VIEW", "false")
    return data


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_url(schema: str, port: int = 5432) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({type(exc).__name__}).")
    yield schema
    with admin.begin() as c:
        c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
